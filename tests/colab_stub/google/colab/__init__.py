"""A stand-in for Colab's `google.colab`, for the simulated Colab run of the notebook."""
