"""syndicator: publish a blog's new posts to its social profiles."""

__version__ = "0.1.0"
