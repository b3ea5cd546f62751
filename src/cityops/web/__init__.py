"""The web application: app factory, problem answers, pages, templates, static files and translations."""
