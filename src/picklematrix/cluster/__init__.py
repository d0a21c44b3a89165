"""The cluster a run computes on: started here, found at an address, or started from another env."""
