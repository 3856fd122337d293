"""Programs around the node: the API client, local networks and the benchmark."""
