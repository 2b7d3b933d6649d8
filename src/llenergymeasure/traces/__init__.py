"""llenergymeasure subpackage."""
