set -e

# Once, cached as an image (stages have the network): column(1), which lays
# out the report's tables, is in bsdextrautils, not in the base image.
next_stage && apt-get update -qq &&
              apt-get install -y -qq --no-install-recommends bsdextrautils >/dev/null &&
              rm -rf /var/lib/apt/lists/*

# On every run, in the computation's container (no network): fail early,
# with a clear message, if the stage above did not leave column behind.
everytime && command -v column >/dev/null
