#!/bin/bash
set -e
export A=1  # comment
next_stage && apt-get update && apt-get install -y curl
next_stage && {
  if ! [ -e /var/tmp/example ]; then
    echo `hostname` is broken | mail root
  fi
  rm -f /var/tmp/example
}
everytime && (cd something && git fetch && git checkout 12345)
cat <<EOF; echo after
body $(case x in a) echo;; esac)
EOF
x=$(case a in a) echo "a)";; esac); y=2
f() { echo hi; }
next_stage && for i in 1 2; do echo $i; done
arr=(1 2
 # c
3)
[[ $x =~ ^(a|b)$ ]] && echo m
cat <<-A <<B &&
	one
	A
two
B
echo $(( (1+2) )) $( (echo sub) )
case $1 in
  (a|b) echo ab ;;
  *.tar.gz) ;;
esac
