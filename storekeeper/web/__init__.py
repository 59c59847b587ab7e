"""The web console at ``/``: server-rendered pages (Jinja2 + htmx) over the contexts' services.

Views are thin: they parse the form or query, call the same service functions as the JSON API
with the signed-in person's principal, and render. See docs/console.md.
"""
