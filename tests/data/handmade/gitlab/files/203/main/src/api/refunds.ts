import { ApiClient, ApiError } from './client';

export interface RefundStatus {
  refund_id: string;
  status: 'pending' | 'processing' | 'succeeded' | 'failed';
  updated_at: string;
}

export async function requestRefund(client: ApiClient, orderId: string, reason: string) {
  const res = await client.post(`/v1/orders/${orderId}/refunds`, { reason });
  if (!res.ok) throw new ApiError(res.status, await res.text());
  return res.json();
}

export async function refundStatus(client: ApiClient, refundId: string): Promise<RefundStatus> {
  const res = await client.get(`/v1/refunds/${refundId}/status`);
  if (!res.ok) throw new ApiError(res.status, await res.text());
  return res.json();
}
