"""Reporting: reports, exports and the demand forecast, over read models of the other contexts."""
