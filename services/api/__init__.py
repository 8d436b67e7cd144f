"""Api: the REST gateway, web UI and WebSocket streams (Litestar)."""
