next_stage && apt-get update && apt-get install -y curl
everytime && make
