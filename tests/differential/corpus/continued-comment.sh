#!/bin/sh
# Commands continued by a `\` onto a line that holds only a comment (or
# nothing): bash removes the backslash-newline, the `#` then starts a comment
# running to the end of that line, and the command ends on that line.
# tests/test_stages_differential.cc checks this file's split against bash's.

update-alternatives --install /usr/bin/x x /usr/bin/y 20 \
    #--slave /usr/bin/z z /usr/bin/w
echo next

# Several continued lines, then the comment.
apt-get install -y \
    curl \
    \
    # wget
echo after

# A `\` at the end of the comment continues nothing.
cp a b \
    # a comment ending in a backslash \
echo not joined

# A continued blank line, and a word glued to the backslash.
ls -l \

echo after blank
echo word\

echo after word

# After compound commands.
for i in 1 2; do
  echo "$i"
done \
  # | sort
if true; then
  echo yes
fi \
  # trailing
{ echo grouped; } \
    # comment
( echo sub ) \
    # comment
f() { echo in f; } \
  # comment

# `;` or `&` then the continued comment: the command ended before it.
echo one; \
  # comment
sleep 0 & \
  # comment

# Inside compound commands, where no top-level command ends.
if true; then
  apt-get install -y x \
    # --no-install-recommends
  echo inside
fi
g() {
  echo in g \
    # comment
}
x=$(echo in a substitution \
  # comment
)

# A here-document after the continued comment: its body starts on the line
# after the comment.
cat <<EOF \
    # comment
body \
EOF
EOF
echo last \
  # comment
