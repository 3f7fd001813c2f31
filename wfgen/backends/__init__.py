"""Where workflows run: one interface (base), the embedded local runtime
(local) and Google Cloud (cloud, the only module that imports google.cloud)."""
