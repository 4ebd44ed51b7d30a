set -e

# Once, cached as an image (stages have the network).
next_stage && apt-get update -qq &&
              apt-get install -y -qq --no-install-recommends tcc libc6-dev >/dev/null

# On every run, in the computation's container (no network): build the
# program from this commit's source, so a change to src/ takes effect.
everytime && tcc -o /usr/local/bin/wordfreq "$COMPDIR/src/wordfreq.c"
