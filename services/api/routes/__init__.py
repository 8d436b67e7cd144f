"""HTTP and WebSocket handlers of the api, one module per resource."""
