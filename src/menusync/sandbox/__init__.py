"""menusync's sandbox: faithful simulators of Careem, Talabat (Delivery Hero) and Deliveroo.

Each simulator serves its platform's documented API (PLATFORMS.md sections 1-3) at the platform's
real paths relative to its prefix, processes menus asynchronously with the platform's own signed
result delivery, enforces the documented validation rules and rate limits, and exposes a control
API under ``/__sandbox`` (CONTRACT.md section 4). It imports nothing else from menusync: it is an
independent implementation of each platform's documented behaviour.

Entry points: :func:`menusync.sandbox.app.create_sandbox_app`,
``menusync.sandbox.{careem,talabat,deliveroo}.create_app``, :func:`menusync.sandbox.server.serve`,
and :class:`menusync.sandbox.settings.SandboxSettings`.
"""
