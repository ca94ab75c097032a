"""The entry service's front door: every request meets it before BentoML does.

Its rooms, each owning one concern:

- :mod:`.guard`: :class:`~.guard.RequestGuard`, the outermost ASGI layer: it sends each request
  through the rooms below in order and then on to BentoML.
- :mod:`.routing`: which paths and methods exist (404, 405), and query strings.
- :mod:`.auth`: the API key (401).
- :mod:`.body`: reading a body within its byte cap, deadline, minimum rate and the memory budget
  (413, 408, 503), and the multipart Content-Type (415).
- :mod:`.forms`: the declaration of an upload form, and checking a body against it (400).
- :mod:`.responses`: the one shape every refusal leaves in, ``{"error", "field"}``, and the
  reshaping of error responses from inside.
- :mod:`.asgi`: the ASGI types and small helpers the rooms share.

The forms the service takes are declared in :mod:`reid.serving.forms`, their text fields'
parsers in :mod:`reid.serving.fields`.
"""
