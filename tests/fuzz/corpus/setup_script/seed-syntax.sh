x=$(case a in a) echo "a)";; esac)
cat <<-E <<"F"
	E
F
[[ $x =~ ^(a|b)$ ]]
a=(1
2)
b[$i+1]=2
f() ( : )
function g { for ((i=0;i<2;i++)) { :; }; }
