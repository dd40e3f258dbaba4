"""gan_mnist: a DCGAN that learns to draw handwritten digits (TensorFlow 2 / Keras 3)."""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notes) hides the useful
# output on CPU machines; a user who wants it back sets the variable themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
