"""How one thing is timed or weighed, safely."""
