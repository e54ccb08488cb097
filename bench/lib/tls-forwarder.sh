# Sourced by the bench scripts. The local system's RegionServices take mutual TLS only (a client certificate of the
# local CA, role edge), which wrk cannot present, so a direct-to-API measurement goes through nginx on loopback: it
# accepts cleartext HTTP/1.1 from wrk and opens keep-alive TLS connections to the API with eu-west's edge certificate,
# as an edge would. The forwarder's cost is counted against Geo, never subtracted.
#   tls_forwarder DIR LISTEN_PORT UPSTREAM_HOST:PORT   (starts nginx, returns once it listens; stop_tls_forwarder DIR)
ensure_nginx() {
  command -v nginx >/dev/null && return 0
  [ "$(id -u)" = 0 ] || { echo "needs nginx: sudo apt-get install -y nginx" >&2; return 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null
}

tls_forwarder() {
  local dir="$1" port="$2" upstream="$3" pki
  pki="$(pwd)/.geo/pki"
  [ -s "$pki/eu-west-edge.crt" ] || { echo "no .geo/pki/eu-west-edge.crt: run ./geo up first" >&2; return 2; }
  ensure_nginx || return 2
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<CONF
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/body; proxy_temp_path $dir/proxy; fastcgi_temp_path $dir/fcgi;
  uwsgi_temp_path $dir/uwsgi; scgi_temp_path $dir/scgi;
  upstream api { server $upstream; keepalive 64; }
  server {
    listen 127.0.0.1:$port;
    location / {
      proxy_pass https://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_ssl_certificate $pki/eu-west-edge.crt;
      proxy_ssl_certificate_key $pki/eu-west-edge.key;
      proxy_ssl_trusted_certificate $pki/ca.crt;
      proxy_ssl_verify on;
      proxy_ssl_name localhost;
      proxy_ssl_session_reuse on;
    }
  }
}
CONF
  nginx -c "$dir/nginx.conf" -p "$dir" &
  local _
  for _ in $(seq 50); do curl -fsS -m 1 "http://127.0.0.1:$port/healthz/ready" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "the TLS forwarder on $port did not come up: $(cat "$dir/error.log" 2>/dev/null)" >&2
  return 1
}

stop_tls_forwarder() {
  [ -s "$1/nginx.pid" ] && nginx -c "$1/nginx.conf" -p "$1" -s stop 2>/dev/null || true
}
