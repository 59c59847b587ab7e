"""Code generated from proto/ by scripts/gen-proto.sh (``make proto``); do not edit."""
