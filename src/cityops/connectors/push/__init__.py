"""push: agency systems send observations to the data-sharing API with a key bound to the feed."""
