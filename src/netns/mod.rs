//! A pod's network namespace: interfaces, addresses, routes, ip rules and sockets.
