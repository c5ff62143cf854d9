/**
 * A JSON-RPC error with its code and a message as the user should read it. The SDK sends a thrown
 * error's `code` and `message` as they are; its own McpError puts "MCP error <code>:" into the
 * message, which the client then prefixes again.
 */
import { ErrorCode } from '@modelcontextprotocol/sdk/types.js';

export class RequestError extends Error {
  override readonly name = 'RequestError';
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** -32002, "Resource not found" in the MCP specification (the SDK has no constant for it). */
export const RESOURCE_NOT_FOUND = -32002;

export const invalidParams = (message: string): never => {
  throw new RequestError(ErrorCode.InvalidParams, message);
};

export const resourceNotFound = (message: string): never => {
  throw new RequestError(RESOURCE_NOT_FOUND, message);
};
