"""spreadsheet: officers (and agency systems) upload CSV or XLSX files to a feed; a preview shows every bad row
before the good values are committed through the same ingest as the data-sharing API.

reader.py (files → rows of cells, no framework) · connector.py (rows → items and per-row errors) · template.py
(the feed's template) · schema.py (settings) · models.py (uploads) · service.py (rules) · api.py · pages.py
"""
