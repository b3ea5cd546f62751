"""Reports: the leader's daily brief, periodic reports as XLSX and PDF with their archive and delivery, open data."""
