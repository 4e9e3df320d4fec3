"""CSV files in and out: uploads, column mapping, the import engine and the export."""
