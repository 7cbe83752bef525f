raise SystemExit("HOSTILE: the submission's numpy.py was imported")
