"""The desktop app (PySide6). Never imports torch: jobs run as worker processes."""
