"""Built-in platform connectors, registered through the `syndicator.connectors` entry points."""
