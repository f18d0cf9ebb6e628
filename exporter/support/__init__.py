"""Small helpers every layer may use: nothing here knows about clouds, configs or metrics."""
