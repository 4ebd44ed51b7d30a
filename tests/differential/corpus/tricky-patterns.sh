#!/bin/bash
# Patterns from real scripts where a split goes wrong easily, in our
# splitter or in the probe that asks bash (tests/differential/bash-probe).
# tests/test_stages_differential.cc checks this file's split against bash's.

# A compound command continued into a pipeline or a redirection on the next
# line (bash accepts `done }`: a probe closing with `}` alone would take
# `done \` as complete).
for cmt in a b; do
	echo "$cmt"
done \
| sort -n | cut -d: -f2-
(iconv -f UTF-8 -t ASCII </dev/null >/dev/null) \
        2>/dev/null &&
    echo converted
if true; then echo; fi \
    | cat
case a in a) ;; esac \
  >/dev/null
[[ -n a ]] \
  && echo tested

# `;` or `&` then `\`: the next line starts a new command.
echo one; \
echo two
sleep 0 & \
echo three

# Multi-line command substitutions: a failed probe inside one ends bash 5.2
# (a syntax error inside $( ) exits the shell, even from eval).
x=$(
  case a in
    a) echo "a)" ;;
  esac
)
y="$(cat <<'END'
)
END
)"
z=`echo \`echo nested\``
w=$(for i in 1 2; do
  echo $i
done | sort \
  | uniq)

# Here-documents: continued lines, two on one line, <<- with tabs.
cat <<EOF; cat <<-'END'
line one \
EOF
EOF
	tab-indented
	END
cat <<"EOF" &&
$(not a substitution
EOF
  echo after

# Arrays with comments and newlines.
arr=(one # first
  two
  # a comment line )
  three)

# case patterns that look like operators; regexes with ( ) and |.
case "$1" in
  *\)*) echo paren ;;
  (--) echo dashes ;;
  *) ;;
esac
[[ $x =~ ^(a|b)\ c$ ]] && echo match
echo $(( (1 + 2) * 3 )) $((
  4 + 5
))

# Functions and braces on their own lines.
f()
{
  local a=$1 \
        b=$2
  echo "$a$b"
}
function g {
  :
}
