"""Import of products and stock levels from CSV and XLSX files, and export of them as CSV."""
