"""Built-in connector types. Each registers through the ``passerelle.connectors``
entry point group exactly as a third-party package would; none imports another."""
