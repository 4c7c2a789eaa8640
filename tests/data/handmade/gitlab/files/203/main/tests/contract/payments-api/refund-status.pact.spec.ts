import { PactV3, MatchersV3 } from '@pact-foundation/pact';
import { refundStatus } from '../../../src/api/refunds';
import { ApiClient } from '../../../src/api/client';

const provider = new PactV3({ consumer: 'web-storefront', provider: 'payments-api' });

describe('GET /v1/refunds/{id}/status', () => {
  it('returns the refund status', () => {
    provider
      .given('refund re_123 exists')
      .uponReceiving('a refund status request')
      .withRequest({ method: 'GET', path: '/v1/refunds/re_123/status' })
      .willRespondWith({
        status: 200,
        body: { refund_id: 're_123', status: MatchersV3.regex('pending|processing|succeeded|failed', 'pending') },
      });
    return provider.executeTest(async (mock) => {
      const status = await refundStatus(new ApiClient(mock.url), 're_123');
      expect(status.refund_id).toBe('re_123');
    });
  });
});
