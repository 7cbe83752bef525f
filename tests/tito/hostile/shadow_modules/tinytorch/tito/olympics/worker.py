raise SystemExit("HOSTILE: a fake worker ran")
