"""The operator's web page at ``/``: plain HTML, one ES module and one stylesheet, no build step.

The page holds no data: it asks for a JWT, keeps it in the tab's ``sessionStorage`` and reads
everything through the public REST API and the Socket.IO namespace ``/sync-progress``, as any
other client would. So this package imports nothing else of menusync (an import-linter layer
enforces it), and its router needs no authentication.
"""
