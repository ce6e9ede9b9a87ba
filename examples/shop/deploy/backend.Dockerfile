FROM busybox:1.36
# The deployed backend: the health endpoint and the app, both in the image.
RUN mkdir -p /srv/www/api/v1 && printf '{"status":"ok"}\n' > /srv/www/api/v1/health
COPY app /srv/www/app
EXPOSE 8080
CMD ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]
