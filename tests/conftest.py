import os
import sys

# tests import small helpers (naive_conv, ...) that live beside them
sys.path.insert(0, os.path.dirname(__file__))
