"""The BentoML side of the service: what ``service.py`` wires together.

A request's path: ``service.py`` (the BentoML services and their APIs) → the front door,
:mod:`reid.serving.http` (routes, API key, body limits, forms declared in
:mod:`reid.serving.forms`, one error shape) → :mod:`reid.serving.entry` (decode under budgets,
the timeout, refusals; the gallery's uploads in :mod:`reid.serving.gallery`, its management
routes in :mod:`reid.serving.gallery_api`) → :mod:`reid.core.pipeline` (detect, embed) →
:mod:`reid.core.matching` (cosine similarity, one-to-one assignment).
"""
