"""What runs inside every env: the corpus, the compute methods, the runner, the script and kernel contexts."""
