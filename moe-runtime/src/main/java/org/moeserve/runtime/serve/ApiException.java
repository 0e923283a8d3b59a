package org.moeserve.runtime.serve;

/** A request the API refuses: HTTP status, OpenAI error type, the parameter at fault and what to do. */
final class ApiException extends RuntimeException {
    final int status;
    final String type, param;

    ApiException(int status, String type, String param, String message) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
    }

    static ApiException invalid(String param, String message) {
        return new ApiException(400, "invalid_request_error", param, message);
    }
}
