CASE = {"family": "outcomes", "summary": "A notebook cell that ends the kernel's own process, before any compute",
        "contexts": ["kernel"], "expect": "harness-error"}
import os

os._exit(5)
result = None
expected = None
