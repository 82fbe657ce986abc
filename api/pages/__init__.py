"""Server-rendered pages (to come, issue 10): Jinja templates beside them, zh-CN and English."""
