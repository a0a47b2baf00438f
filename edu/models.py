"""Quizzes, attempts, expert reviews and Turing studies arrive with the education issues."""
