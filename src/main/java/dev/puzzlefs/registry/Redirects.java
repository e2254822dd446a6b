package dev.puzzlefs.registry;

import io.vertx.core.Future;
import io.vertx.core.MultiMap;
import io.vertx.core.http.HttpClientRequest;
import io.vertx.core.http.HttpClientResponse;
import io.vertx.core.http.HttpMethod;
import io.vertx.core.http.RequestOptions;
import java.net.URI;
import java.util.Locale;

/**
 * How a {@link RegistryClient} follows redirects (301, 302, 303, 307, 308) of GET and HEAD
 * requests. Registries commonly redirect blob downloads to object storage with a pre-signed URL:
 * the registry's {@code Authorization} header must not go there, both because it is a credential
 * for another party and because storage services reject requests that carry one. So the header is
 * kept only when the new location has the same scheme, host and port. (Vert.x's own redirect
 * handler copies every header.)
 */
final class Redirects {
  private Redirects() {}

  /** The request that follows {@code response}, or null when it is not a redirect to follow. */
  static Future<RequestOptions> follow(HttpClientResponse response) {
    int status = response.statusCode();
    String location = response.getHeader("Location");
    if (location == null || !isRedirect(status)) {
      return null;
    }
    HttpClientRequest request = response.request();
    HttpMethod method = request.getMethod();
    if (method != HttpMethod.GET && method != HttpMethod.HEAD) {
      if (status != 303) {
        return null;
      }
      method = HttpMethod.GET;
    }
    URI from;
    URI to;
    try {
      from = URI.create(request.absoluteURI());
      to = from.resolve(location.trim());
    } catch (IllegalArgumentException e) {
      return Future.failedFuture(
          new IllegalArgumentException("the registry redirected to an invalid location", e));
    }
    String scheme = to.getScheme() == null ? "" : to.getScheme().toLowerCase(Locale.ROOT);
    if (!scheme.equals("http") && !scheme.equals("https")) {
      return Future.failedFuture(
          new IllegalArgumentException("the registry redirected to a " + scheme + " URL"));
    }
    MultiMap headers = MultiMap.caseInsensitiveMultiMap().addAll(request.headers());
    headers.remove("Content-Length");
    headers.remove("Host");
    if (!sameOrigin(from, to)) {
      headers.remove("Authorization");
    }
    RequestOptions next =
        new RequestOptions().setMethod(method).setAbsoluteURI(to.toString()).setHeaders(headers);
    return Future.succeededFuture(next);
  }

  /** True when {@code a} and {@code b} have the same scheme, host and (effective) port. */
  static boolean sameOrigin(URI a, URI b) {
    String schemeA = a.getScheme() == null ? "" : a.getScheme().toLowerCase(Locale.ROOT);
    String schemeB = b.getScheme() == null ? "" : b.getScheme().toLowerCase(Locale.ROOT);
    return schemeA.equals(schemeB)
        && a.getHost() != null
        && a.getHost().equalsIgnoreCase(b.getHost())
        && port(a) == port(b);
  }

  private static boolean isRedirect(int status) {
    return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
  }

  private static int port(URI uri) {
    if (uri.getPort() >= 0) {
      return uri.getPort();
    }
    return "https".equalsIgnoreCase(uri.getScheme()) ? 443 : 80;
  }
}
