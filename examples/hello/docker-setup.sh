# Applied once and cached as an image: appending a stage runs just that one.
next_stage && mkdir -p /opt/hello && echo "made by stage 1" > /opt/hello/stage1
next_stage && uname -a > /opt/hello/kernel-at-build

# Runs on every ce-run, in the computation's container.
everytime && echo "everytime: $(cat /opt/hello/stage1)"
