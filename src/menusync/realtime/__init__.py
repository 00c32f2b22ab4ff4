"""Realtime progress: typed events, the outbox writer, the relay and the Socket.IO namespace."""
