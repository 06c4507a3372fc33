"""Reading and writing files: raw exports (CSV, Excel, SAS), YAML with line numbers, XPT v5, the input path policy and the output folder's journalled publication."""
