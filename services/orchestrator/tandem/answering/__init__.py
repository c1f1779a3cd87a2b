"""What decides and checks an answer: its outcome before generation, its literals after it."""
