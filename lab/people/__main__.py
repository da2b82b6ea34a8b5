"""`python -m lab.people where|fetch` (lab.people.weights.main)."""
from lab.people.weights import main

main()
