"""One module per named figure; each exposes ``FIGURE`` (see ``bench.figure.Figure``)."""
