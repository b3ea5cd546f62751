"""cityops — Trung tâm Giám sát, Điều hành Thông minh (Intelligent Operations Center)."""

__version__ = "0.1.0"
